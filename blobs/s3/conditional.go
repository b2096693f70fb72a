package s3

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
)

// Whether the bucket's server honours a conditional write (PutObject with
// If-None-Match: *) is learnt once per process (Driver.cond) by writing a
// probe object twice. Promote reads an index's existence before writing it
// only where the server may not honour the condition: there a second
// write would replace an index that names another upload's data object.

// honoured reports whether conditional writes are known to be honoured.
// A probe that fails (the server unreachable) answers false, and the next
// call probes again.
func (d *Driver) honoured(ctx context.Context) bool {
	honour, err := d.cond.get(func() (bool, error) { return d.probeConditional(ctx) })
	return err == nil && honour
}

// probeConditional writes one probe object twice, the second time on the
// condition that it does not exist, and removes it. The probe lives under
// uploads/ with no state, so that one a crash leaves behind is a stray.
func (d *Driver) probeConditional(ctx context.Context) (bool, error) {
	var n [8]byte
	rand.Read(n[:])
	key := d.uploadPrefix("probe-"+hex.EncodeToString(n[:])) + "conditional"
	if err := d.put(ctx, key, nil, true); err != nil {
		return false, err
	}
	defer d.del(ctx, key)
	err := d.put(ctx, key, nil, true)
	if errors.Is(err, errExists) {
		return true, nil
	}
	return false, err
}
