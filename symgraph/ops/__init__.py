"""Op families. Each module holds ops with their numpy computation, shape rule and gradient."""
