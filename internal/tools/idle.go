package tools

// CloseIdleConnections closes the router's idle connections to internal
// APIs; calls in flight keep theirs. A router replaced by a configuration
// reload is closed this way.
func (r *Router) CloseIdleConnections() { r.client.CloseIdleConnections() }
