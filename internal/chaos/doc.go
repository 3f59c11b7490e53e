// Package chaos holds streamjoin's failure tests: they run the real binary as
// subprocesses against an in-process Kafka-protocol broker (kfake) and a
// private PostgreSQL, break things (SIGKILL, SIGSTOP, SIGTERM, stopping the
// database or the broker) while a generated stream flows, and then compare
// what is in PostgreSQL and in the dead-letter topics with the state the
// generator says one clean run produces.
//
// `go test ./internal/chaos` runs the fast versions (make test). `make chaos`
// runs the long ones with -chaos.events and -chaos.kills, and writes the
// figures it measured with -chaos.report.
package chaos
