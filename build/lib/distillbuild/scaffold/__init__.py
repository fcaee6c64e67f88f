"""`distill init`: the files a new project starts from."""
