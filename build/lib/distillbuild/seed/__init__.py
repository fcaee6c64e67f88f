"""Seed generation (the `seed` stage's engine): new inputs written by a generator model.

`requests` plans the requests that fill each quota and writes their prompts; `replies` reads
the generator's answers back into candidate inputs; `selection` keeps the usable, new ones and
gives every other a reason; `diversity` measures what was kept. The stage
(distillbuild/pipeline/stages/seed.py) sends the requests through the teacher engine (cache, budget,
retries) and writes the files.
"""
