"""infra_validate: serve the candidate model in the real KServe ModelServer app and check it before push."""
