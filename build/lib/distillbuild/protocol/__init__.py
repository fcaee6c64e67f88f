"""The task's protocol with a model: the prompts it is asked, how its answers are read into
labels, fields and soft labels, label normalisation, and the checks on the first answers."""
