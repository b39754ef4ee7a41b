// Package deploy holds no code: it is the home of the deployment files
// (systemd unit, container image, Prometheus rules) and of the tests that keep
// them, docs/deployment.md and docs/monitoring.md in step with the code.
package deploy
