"""Real model servers the pipeline starts on 127.0.0.1 for the length of a stage (a llama.cpp
teacher), as opposed to the offline stand-ins of distillbuild.standin."""
