// The conformance suite runs from outside the package: it drives the
// driver through blobs, which imports it.
package local_test

import (
	"testing"

	"github.com/kvreg/kvreg/blobs/driver"
	"github.com/kvreg/kvreg/blobs/driver/drivertest"
	"github.com/kvreg/kvreg/blobs/local"
)

func TestConformance(t *testing.T) {
	drivertest.Run(t, func(t *testing.T) driver.Driver {
		d, err := local.Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return d
	})
}
