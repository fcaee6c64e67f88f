"""The OpenAI-compatible client every model call goes through (teacher, judges, the seed
generator): settings, the answer cache, rate limits, the online and batch processors behind
`engine.answer_all`, `/v1/completions`, cost estimates, the run report and the LLM judge."""
