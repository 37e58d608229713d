"""Generated Task specs and the judge of what the API server and the operator make of them."""
