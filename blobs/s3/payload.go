package s3

import (
	"context"
	"crypto/sha256"
	"encoding"
	"encoding/binary"
	"encoding/hex"
	"sync/atomic"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/smithy-go/middleware"
)

// A write's payload is signed with its sha256 (SigV4's X-Amz-Content-Sha256,
// also over plain HTTP), which the server checks against the bytes. The
// SDK would hash every payload itself, a second pass over bytes the caller
// has hashed already; instead each write hands the signer the sum the
// driver has: for the upload's first bytes (an upload's in-place segment,
// its first part, or its data object written whole at Seal when it has no
// part) the sum of the caller's checkpoint, when that is a sha256 of
// exactly those bytes (blobs' running hash is), and otherwise one the
// driver computes, once per payload. A sum that were not the payload's fails the write (the
// server refuses it); it never changes the bytes stored.

// payloadSumKey carries a request's payload sum in its context: the
// SDK's stack values are cleared when an operation starts.
type payloadSumKey struct{}

// withPayloadSum is ctx for a request whose payload's sha256 is sum.
func withPayloadSum(ctx context.Context, sum []byte) context.Context {
	return context.WithValue(ctx, payloadSumKey{}, hex.EncodeToString(sum))
}

// signPayloadSum gives the signer the sum withPayloadSum set, before the
// SDK's step that hashes a payload with no sum given (it skips then). It
// is first in the finalize step, so every attempt of a retried request
// carries it.
func signPayloadSum(stack *middleware.Stack) error {
	return stack.Finalize.Add(middleware.FinalizeMiddlewareFunc("kvregPayloadSum",
		func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
			if sum, ok := ctx.Value(payloadSumKey{}).(string); ok {
				ctx = v4.SetPayloadHash(ctx, sum)
			}
			return next.HandleFinalize(ctx, in)
		}), middleware.Before)
}

// payloadSum is b's sha256, computed by the driver: the bytes it hashes
// are counted, so that a test can tell that no payload is hashed twice.
func (d *Driver) payloadSum(b []byte) []byte {
	d.hashed.Add(int64(len(b)))
	s := sha256.Sum256(b)
	return s[:]
}

// checkpointSum is the sha256 of the n bytes a checkpoint is of, if it is
// the state of a sha256 (crypto/sha256's marshalled form, which ends with
// the count of bytes written) after exactly n bytes; nil otherwise.
func checkpointSum(cp []byte, n int64) []byte {
	if len(cp) < 8 || binary.BigEndian.Uint64(cp[len(cp)-8:]) != uint64(n) {
		return nil
	}
	h := sha256.New()
	if h.(encoding.BinaryUnmarshaler).UnmarshalBinary(cp) != nil {
		return nil
	}
	return h.Sum(nil)
}

// hashedBytes counts the payload bytes the driver hashed itself.
type hashedBytes struct{ atomic.Int64 }
