"""`journey bench`: the W1 workload of SPEC §6 (`workload`) and the runner that measures it (`runner`)."""
