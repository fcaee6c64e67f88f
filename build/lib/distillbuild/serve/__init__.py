"""`distill serve`: the promoted student behind an OpenAI-compatible endpoint, with the route's
teacher fallback (router.py decides, http.py speaks the protocol)."""
