// The conformance suite runs from outside the package: it drives the
// driver through blobs, which imports it.
package s3_test

import (
	"testing"

	"github.com/kvreg/kvreg/blobs/driver"
	"github.com/kvreg/kvreg/blobs/driver/drivertest"
	"github.com/kvreg/kvreg/blobs/s3"
)

func TestConformance(t *testing.T) {
	drivertest.Run(t, func(t *testing.T) driver.Driver { return s3.NewTestDriver(t) })
}
