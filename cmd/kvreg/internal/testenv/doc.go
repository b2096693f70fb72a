// Package testenv holds what the tests of kvreg as a process share: the
// kvreg binary built once per test binary and `kvreg serve` started on a
// loopback port (Kvreg, Start), an environment cleaned of the user's client
// settings, a containerd and dockerd of their own, a CA with a server
// certificate for 127.0.0.1, haproxy in front of several kvreg processes
// (StartHAProxy), kvreg serve --replicas processes on one database and
// one bucket behind it (StartCluster), and an events endpoint that keeps
// what kvreg delivers (Receiver).
// Only tests import it; it prints nothing and calls no testing functions.
package testenv
