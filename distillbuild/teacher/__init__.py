"""Teacher engine: the simulated stand-in, the OpenAI-compatible client and its cache."""
