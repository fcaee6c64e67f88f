"""The endpoints a stage talks to: `open` gives a spec section's endpoint to a stage (a URL
already there, or one started for the stage's length): the offline stand-ins (`standin/`),
llama.cpp serving a GGUF (`llamacpp`), another pipeline's student (`pipeline_teacher`), all
child processes on 127.0.0.1 (`child`)."""
