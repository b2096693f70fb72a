// Package racetest is the client of kvreg's race tests: clients with their
// own connections that push (each blob uploaded in one of the ways real
// clients use), pull, list and delete over HTTP from many goroutines at
// once, count every answer by operation and status, and report what is
// wrong with t.Errorf. The API's race tests run it against one registry
// served by httptest, the cluster's against replicas behind haproxy.
//
// It speaks only the distribution API over HTTP: it does not import the
// api package (whose tests import it) nor open a registry. No code but
// tests imports it.
package racetest
