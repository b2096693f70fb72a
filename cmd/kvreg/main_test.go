package main

import (
	"os"
	"testing"

	"github.com/kvreg/kvreg/cmd/kvreg/internal/testenv"
)

// TestMain removes the kvreg binary the tests built (testenv.Kvreg).
func TestMain(m *testing.M) {
	code := m.Run()
	testenv.Cleanup()
	os.Exit(code)
}
