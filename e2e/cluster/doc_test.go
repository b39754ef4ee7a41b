// Package cluster_test proves, with real processes, that three voicegate
// replicas sharing Redis (state.driver: redis) and PostgreSQL
// (storage.driver: postgres) behave as one while replicas are killed and
// drained and the links to Redis and PostgreSQL are cut and restored. See
// docs/cluster-test.md. The test runs on unix only (signals, pg_ctl).
package cluster_test
