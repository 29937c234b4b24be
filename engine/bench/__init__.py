"""`journey bench`: the W1 workload of docs/cli.md (`workload`) and the runner that measures it (`runner`)."""
