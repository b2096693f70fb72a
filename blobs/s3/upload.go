package s3

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	s3api "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/kvreg/kvreg/blobs/driver"
)

// maxParts is S3's limit of parts in one multipart upload.
const maxParts = 10000

// CreateUpload writes the upload's state object, naming the data object
// the upload's bytes will become: per upload, with a random suffix so that
// an id used again never names the object of an earlier upload. The write
// is conditional: it is what finds an upload of that id, with no request
// before it.
func (d *Driver) CreateUpload(id, repo string) error {
	ctx := context.Background()
	if err := validID(id); err != nil {
		return err
	}
	st := &state{Repo: repo, Object: d.dataKey(id), Modified: time.Now()}
	b, _ := json.Marshal(st)
	if err := d.putState(ctx, id, b, nil); errors.Is(err, errExists) {
		// The client retries a PUT whose answer it lost: the state that
		// is there may be the one this call wrote (its data object's
		// random name says so).
		if got, rerr := d.readState(ctx, id); rerr == nil && got.Object == st.Object {
			return nil
		}
		return fmt.Errorf("%w: %q", ErrExists, id)
	} else if err != nil {
		return err
	}
	return nil
}

// dataKey is a new name for a data object of upload id: a random suffix
// makes it one that no write has used, so that what a state names was
// written by the request that named it, or by one whose state it read,
// and by no other (see the package doc).
func (d *Driver) dataKey(id string) string {
	return d.key("data", id+"-"+nonce())
}

// nonce is 16 random hex digits.
func nonce() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// maxSegments bounds the objects of a tail: an Append that would add one
// more rewrites the tail as one segment.
const maxSegments = 32

// readTail appends the upload's tail segments to buf.
func (d *Driver) readTail(ctx context.Context, b bytesOf, buf []byte) ([]byte, error) {
	for _, sg := range b.Tail {
		out, err := d.c.GetObject(ctx, &s3api.GetObjectInput{Bucket: &d.bucket, Key: aws.String(sg.Key)})
		if err != nil {
			return buf, err
		}
		n, err := io.ReadFull(out.Body, buf[len(buf):len(buf)+int(sg.Size)])
		out.Body.Close()
		buf = buf[:len(buf)+n]
		if err != nil {
			return buf, err
		}
	}
	return buf, nil
}

// putSegment writes b as a new tail segment of upload id; sum is b's
// sha256, or nil to compute it.
func (d *Driver) putSegment(ctx context.Context, id string, st *state, b []byte, sum []byte) (segment, error) {
	st.Gen++
	sg := segment{Key: d.uploadPrefix(id) + fmt.Sprintf("tail-%d-%s", st.Gen, nonce()), Size: int64(len(b))}
	return sg, d.putSum(ctx, sg.Key, b, false, sum)
}

// inPlace reports whether an Append that leaves parts and tail (as they
// will be, before its new segment) may write that segment as the data
// object itself: the upload's first bytes, with no part, so that Seal of
// an upload of one segment moves no bytes. The segment goes to a new data
// object key (dataKey), which the state then names as its data object;
// not while a multipart upload may be in progress (Multipart), which is
// found and aborted by the data object's key.
func inPlace(st *state, parts []part, tail []segment) bool {
	return len(parts) == 0 && len(tail) == 0 && !st.Multipart
}

var _ driver.Checkpointer = (*Driver)(nil)

// Append reads r into parts of the fixed size, starting with the upload's
// tail, uploads each full part, and writes what is left as a new tail
// object. The state is written last: until then the upload is as it was.
func (d *Driver) Append(id string, size int64, r io.Reader) (int64, error) {
	return d.AppendCheckpoint(id, size, r, nil)
}

// AppendCheckpoint is Append that keeps cp() in the state it writes last,
// so that the checkpoint costs no request of its own.
func (d *Driver) AppendCheckpoint(id string, size int64, r io.Reader, cp func() []byte) (int64, error) {
	ctx := context.Background()
	if err := validID(id); err != nil {
		return 0, err
	}
	st, err := d.readState(ctx, id)
	if err != nil {
		return 0, err
	}
	if st.Sealed {
		return 0, fmt.Errorf("%w: append to %q", ErrSealed, id)
	}
	if st.Size != size {
		// Another process appended: whoever catches up reads the
		// state again, not the copy a hold keeps.
		d.keepState(id, nil)
		return 0, fmt.Errorf("%w: append at %d to %q, which holds %d bytes", ErrSize, size, id, st.Size)
	}
	// The tail's bytes are read in only if a part fills: until then buf
	// keeps room for them and holds only r's bytes after that room.
	room := int(st.TailSize)
	buf := d.bufs.get(room)
	defer func() { d.bufs.put(buf) }()
	parts, tail := slices.Clone(st.Parts), slices.Clone(st.Tail)
	var written int64
	for {
		if len(buf) == cap(buf) {
			// A full buffer may hold the rest of r: grow only for
			// a byte more, so a blob of exactly a tier's size stays
			// in that tier.
			var one [1]byte
			n, err := fill(r, one[:])
			if err != nil {
				return 0, err
			}
			if n == 0 {
				break
			}
			buf = append(d.bufs.grow(buf), one[0])
			written++
		}
		n, rerr := fill(r, buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		written += int64(n)
		if rerr != nil {
			return 0, rerr
		}
		if int64(len(buf)) < d.partSize {
			if len(buf) < cap(buf) {
				break // r ended
			}
			continue
		}
		if room > 0 {
			if _, err := d.readTail(ctx, st.bytesOf, buf[:0]); err != nil {
				return 0, err
			}
			room, tail = 0, nil
		}
		if len(parts) == maxParts-1 {
			return 0, fmt.Errorf("%w: upload %q reached S3's %d parts", driver.ErrNoSpace, id, maxParts)
		}
		if err := d.ensureMultipart(ctx, id, st); err != nil {
			return 0, err
		}
		// The first part holds the upload's first bytes, all read so
		// far (the tail's before r's): the checkpoint's sum is its own.
		var sum []byte
		if len(parts) == 0 && cp != nil {
			sum = checkpointSum(cp(), int64(len(buf)))
		}
		p, err := d.uploadPartSum(ctx, st, int32(len(parts)+1), buf, sum)
		if err != nil {
			return 0, err
		}
		parts = append(parts, p)
		buf = buf[:0]
	}
	if room > 0 && len(buf) > room && len(tail) >= maxSegments {
		if _, err := d.readTail(ctx, st.bytesOf, buf[:0]); err != nil {
			return 0, err
		}
		room, tail = 0, nil
	}
	next := bytesOf{Parts: parts, Tail: tail, TailSize: int64(len(buf)), Size: size + written}
	if cp != nil {
		next.Checkpoint = cp()
	}
	if len(buf) > room {
		// With no part and nothing of the tail kept, buf is the
		// upload's bytes from its first: the checkpoint's sum is the
		// segment's.
		var sum []byte
		if len(parts) == 0 && room == 0 {
			sum = checkpointSum(next.Checkpoint, next.Size)
		}
		var sg segment
		var err error
		if inPlace(st, parts, tail) {
			sg = segment{Key: d.dataKey(id), Size: int64(len(buf) - room)}
			if err = d.putSum(ctx, sg.Key, buf[room:], false, sum); err == nil {
				st.Object = sg.Key
			}
		} else {
			sg, err = d.putSegment(ctx, id, st, buf[room:], sum)
		}
		if err != nil {
			return 0, err
		}
		next.Tail = append(next.Tail, sg)
	}
	var stale []segment
	if st.Prev != nil {
		stale = st.Prev.Tail
	}
	prev := st.bytesOf
	var own []segment // the segment this Append wrote, if any
	if len(next.Tail) > len(tail) {
		own = next.Tail[len(tail):]
	}
	st.bytesOf, st.Prev, st.Modified = next, &prev, time.Now()
	if err := d.writeState(ctx, id, st); err != nil {
		if errors.Is(err, driver.ErrStale) {
			// Surely not stored: the upload went on elsewhere, or
			// ended. What this Append wrote is named by nothing (its
			// keys are its own), so it goes now rather than as a stray.
			// (A multipart upload it started was named by the state
			// ensureMultipart wrote, and is the upload's.)
			for _, sg := range own {
				d.del(ctx, sg.Key)
			}
		}
		return 0, err
	}
	d.dropTail(ctx, stale, st)
	return written, nil
}

// Checkpoint reads the checkpoint from the state object.
func (d *Driver) Checkpoint(id string) ([]byte, int64, error) {
	if err := validID(id); err != nil {
		return nil, 0, err
	}
	st, err := d.readState(context.Background(), id)
	if err != nil {
		return nil, 0, err
	}
	return st.Checkpoint, st.Size, nil
}

// fill reads r into b until b is full or r ends. Unlike io.ReadFull it
// passes on every error of r, io.ErrUnexpectedEOF included: that is how a
// request body cut short ends, which must fail the Append, not end it.
func fill(r io.Reader, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := r.Read(b[n:])
		n += m
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// dropTail deletes the segments the state no longer names. Failing is
// harmless: RemoveUpload deletes everything under the upload's prefix.
// A segment written in place, at the data object's key, is never deleted
// here: that key is the upload's own (a completed multipart upload, or
// Seal's copy of the tail, is written there over the segment), and
// RemoveUpload deletes it unless a blob's index names it.
func (d *Driver) dropTail(ctx context.Context, segs []segment, st *state) {
	for _, sg := range segs {
		if sg.Key != st.Object && !st.bytesOf.names(sg.Key) && !st.Prev.names(sg.Key) {
			d.del(ctx, sg.Key)
		}
	}
}

// ensureMultipart starts the upload's multipart upload, recording its id
// before any part is sent so that RemoveUpload can abort it.
func (d *Driver) ensureMultipart(ctx context.Context, id string, st *state) error {
	if st.MultipartID != "" {
		return nil
	}
	if !st.Multipart {
		st.Multipart = true
		if err := d.writeState(ctx, id, st); err != nil {
			st.Multipart = false
			return err
		}
	}
	out, err := d.c.CreateMultipartUpload(ctx, &s3api.CreateMultipartUploadInput{Bucket: &d.bucket, Key: &st.Object})
	if err != nil {
		return err
	}
	st.MultipartID = aws.ToString(out.UploadId)
	if err := d.writeState(ctx, id, st); err != nil {
		d.abort(ctx, st)
		st.MultipartID = ""
		return err
	}
	return nil
}

func (d *Driver) uploadPart(ctx context.Context, st *state, n int32, b []byte) (part, error) {
	return d.uploadPartSum(ctx, st, n, b, nil)
}

// uploadPartSum is uploadPart of b whose sha256 is sum, or, if sum is nil,
// is computed here.
func (d *Driver) uploadPartSum(ctx context.Context, st *state, n int32, b []byte, sum []byte) (part, error) {
	if sum == nil {
		sum = d.payloadSum(b)
	}
	ctx = withPayloadSum(ctx, sum)
	out, err := d.c.UploadPart(ctx, &s3api.UploadPartInput{
		Bucket: &d.bucket, Key: &st.Object, UploadId: &st.MultipartID, PartNumber: aws.Int32(n),
		Body: bytes.NewReader(b), ContentLength: aws.Int64(int64(len(b))),
	})
	if err != nil {
		return part{}, err
	}
	return part{N: n, ETag: aws.ToString(out.ETag), Size: int64(len(b))}, nil
}

// copyPart makes segment sg part n of the upload's multipart upload by a
// copy on the server (UploadPartCopy).
func (d *Driver) copyPart(ctx context.Context, st *state, n int32, sg segment) (part, error) {
	src := d.bucket + "/" + sg.Key
	out, err := d.c.UploadPartCopy(ctx, &s3api.UploadPartCopyInput{
		Bucket: &d.bucket, Key: &st.Object, UploadId: &st.MultipartID, PartNumber: aws.Int32(n),
		CopySource: aws.String((&url.URL{Path: src}).EscapedPath()),
	})
	if err != nil {
		return part{}, err
	}
	if out.CopyPartResult == nil || aws.ToString(out.CopyPartResult.ETag) == "" {
		return part{}, fmt.Errorf("%w: copy of %s into part %d answered no ETag", ErrCorrupt, sg.Key, n)
	}
	return part{N: n, ETag: aws.ToString(out.CopyPartResult.ETag), Size: sg.Size}, nil
}

// notImplemented reports whether err is a server's answer that it does not
// implement the operation.
func notImplemented(err error) bool {
	var ae smithy.APIError
	if errors.As(err, &ae) && ae.ErrorCode() == "NotImplemented" {
		return true
	}
	return httpStatus(err) == 501
}

// abortAll aborts every multipart upload of key, an upload's data object:
// those it created but did not record. Only this upload ever writes key.
func (d *Driver) abortAll(ctx context.Context, key string) error {
	in := &s3api.ListMultipartUploadsInput{Bucket: &d.bucket, Prefix: &key}
	for {
		out, err := d.c.ListMultipartUploads(ctx, in)
		if err != nil {
			return err
		}
		for _, u := range out.Uploads {
			if aws.ToString(u.Key) != key {
				continue
			}
			if err := d.abort(ctx, &state{Object: key, MultipartID: aws.ToString(u.UploadId)}); err != nil {
				return err
			}
		}
		if !aws.ToBool(out.IsTruncated) {
			return nil
		}
		in.KeyMarker, in.UploadIdMarker = out.NextKeyMarker, out.NextUploadIdMarker
	}
}

func (d *Driver) abort(ctx context.Context, st *state) error {
	_, err := d.c.AbortMultipartUpload(ctx, &s3api.AbortMultipartUploadInput{Bucket: &d.bucket, Key: &st.Object, UploadId: &st.MultipartID})
	if err != nil && !notFound(err) {
		return err
	}
	return nil
}

// Truncate undoes the last Append (to the size before it), or cuts the
// tail; it cannot cut into full parts otherwise.
func (d *Driver) Truncate(id string, size int64) error {
	ctx := context.Background()
	if err := validID(id); err != nil {
		return err
	}
	st, err := d.readState(ctx, id)
	if err != nil {
		return err
	}
	if size == st.Size {
		return nil
	}
	if st.Sealed {
		return fmt.Errorf("%w: truncate of %q", ErrSealed, id)
	}
	old := st.Tail
	switch inParts := st.Size - st.TailSize; {
	case st.Prev != nil && size == st.Prev.Size:
		st.bytesOf, st.Prev = *st.Prev, nil
	case size >= inParts && size < st.Size:
		// Keep the segments wholly under size; rewrite the one it cuts.
		next := bytesOf{Parts: st.Parts, TailSize: size - inParts, Size: size}
		at := inParts
		for _, sg := range st.Tail {
			if at+sg.Size <= size {
				next.Tail = append(next.Tail, sg)
				at += sg.Size
				continue
			}
			if keep := size - at; keep > 0 {
				buf := d.bufs.get(int(sg.Size))
				defer d.bufs.put(buf)
				b, err := d.readTail(ctx, bytesOf{Tail: []segment{sg}}, buf[:0])
				if err != nil {
					return err
				}
				cut, err := d.putSegment(ctx, id, st, b[:keep], nil)
				if err != nil {
					return err
				}
				next.Tail = append(next.Tail, cut)
			}
			break
		}
		st.bytesOf = next
	default:
		return fmt.Errorf("%w: truncate of %q from %d to %d bytes", ErrSize, id, st.Size, size)
	}
	if !st.Multipart && !st.bytesOf.names(st.Object) && !st.Prev.names(st.Object) {
		// A segment written as the data object is dropped: the next
		// one written so goes to a new key (inPlace), so this one goes
		// now, with the rest of what is dropped.
		st.Object = d.dataKey(id)
	}
	st.Modified = time.Now()
	if err := d.writeState(ctx, id, st); err != nil {
		return err
	}
	d.dropTail(ctx, old, st)
	return nil
}

// ReadUpload streams a sealed upload's data object. Before Seal only an
// upload with no full part is readable (its tail): S3 gives no part back
// before the multipart upload completes.
func (d *Driver) ReadUpload(id string) (io.ReadCloser, error) {
	ctx := context.Background()
	if err := validID(id); err != nil {
		return nil, err
	}
	st, err := d.readState(ctx, id)
	if err != nil {
		return nil, err
	}
	if !st.Sealed && len(st.Parts) > 0 {
		return nil, fmt.Errorf("%w: %q has %d parts", ErrUnreadable, id, len(st.Parts))
	}
	keys := []string{st.Object}
	if !st.Sealed {
		keys = keys[:0]
		for _, sg := range st.Tail {
			keys = append(keys, sg.Key)
		}
	}
	return &concat{d: d, id: id, keys: keys}, nil
}

// concat reads objects one after the other, each when the one before ends.
type concat struct {
	d    *Driver
	id   string
	keys []string
	cur  io.ReadCloser
}

func (c *concat) Read(p []byte) (int, error) {
	for {
		if c.cur == nil {
			if len(c.keys) == 0 {
				return 0, io.EOF
			}
			out, err := c.d.c.GetObject(context.Background(), &s3api.GetObjectInput{Bucket: &c.d.bucket, Key: &c.keys[0]})
			if err != nil {
				if notFound(err) {
					return 0, fmt.Errorf("%w: upload %q: object %s", driver.ErrNotFound, c.id, c.keys[0])
				}
				return 0, err
			}
			c.cur, c.keys = out.Body, c.keys[1:]
		}
		n, err := c.cur.Read(p)
		if err == io.EOF {
			c.cur.Close()
			c.cur = nil
			if n == 0 {
				continue
			}
			err = nil
		}
		return n, err
	}
}

func (c *concat) Close() error {
	if c.cur != nil {
		return c.cur.Close()
	}
	return nil
}

// Upload reads the state object, and, for Promoting when the state has
// no mark, the index of its checkpoint's digest and, if that does not
// name the data object, whether the data object is there
// (reportedPromoting). Not while the upload is held: a hold is a request
// of the upload, which looks up its repository and size, and is the one
// that would promote it; those that finish interrupted commits hold
// nothing.
func (d *Driver) Upload(id string) (driver.UploadInfo, error) {
	if err := validID(id); err != nil {
		return driver.UploadInfo{}, err
	}
	st, err := d.readState(context.Background(), id)
	if err != nil {
		return driver.UploadInfo{}, err
	}
	promoting := st.Promoting
	if !d.held(id, func(*hold) {}) {
		if promoting, err = d.reportedPromoting(context.Background(), id, st); err != nil {
			return driver.UploadInfo{}, err
		}
	}
	return driver.UploadInfo{Repo: st.Repo, Size: st.Size, Modified: st.Modified, Promoting: promoting}, nil
}

// Uploads lists the uploads with a state: in the database when the driver
// keeps states there (KeepStates), else the prefixes under uploads/, each
// an upload's.
func (d *Driver) Uploads() ([]string, error) {
	if d.states != nil {
		var ids []string
		err := d.states.EachState(func(id string, _ []byte) error {
			ids = append(ids, id)
			return nil
		})
		return ids, err
	}
	root := d.key("uploads") + "/"
	var ids []string
	err := d.list(context.Background(), root, "/", func(key string, size int64) error {
		if size < 0 {
			ids = append(ids, strings.TrimSuffix(strings.TrimPrefix(key, root), "/"))
		}
		return nil
	})
	return ids, err
}

// Seal completes the multipart upload with the tail as its last part, or,
// for an upload shorter than a part, writes the tail as the data object,
// unless the tail is one segment written there already (inPlace).
//
// Sealing an upload whose one segment is in place changes no bytes, so
// while the upload is held (Hold) the sealed state is kept in memory only,
// with the object, size and checkpoint of the state stored: Promote, which
// follows in the same request, writes it with a digest other than the
// checkpoint's, and otherwise never. A crash leaves the state as it was
// before Seal, naming the same bytes, which a commit again or RemoveUpload
// handles as before.
func (d *Driver) Seal(id string) error {
	ctx := context.Background()
	if err := validID(id); err != nil {
		return err
	}
	st, err := d.readState(ctx, id)
	if err != nil {
		return err
	}
	if st.Sealed {
		return nil
	}
	inPlace := len(st.Parts) == 0 && len(st.Tail) == 1 && st.Tail[0].Key == st.Object && st.Tail[0].Size == st.TailSize
	// A tail of one segment after parts becomes the last part by a copy
	// on the server: its bytes are neither read back nor sent again.
	copyTail := len(st.Parts) > 0 && len(st.Tail) == 1 && st.Tail[0].Size == st.TailSize
	var tail, buf []byte
	defer func() {
		if buf != nil {
			d.bufs.put(buf)
		}
	}()
	readTail := func() error {
		buf = d.bufs.get(int(st.TailSize))
		var err error
		tail, err = d.readTail(ctx, st.bytesOf, buf[:0])
		return err
	}
	if !inPlace && !copyTail {
		if err := readTail(); err != nil {
			return err
		}
	}
	if inPlace && st.MultipartID == "" {
		sealed := *st
		sealed.Sealed, sealed.Prev = true, nil
		sealed.bytesOf = bytesOf{Size: st.Size, Checkpoint: st.Checkpoint}
		if b, err := json.Marshal(&sealed); err == nil && d.keepUnwritten(id, b) {
			return nil
		}
	}
	if len(st.Parts) == 0 {
		if !inPlace {
			// A data object of its own (dataKey), unless a multipart
			// upload, found by the key, may be in progress. The tail
			// is the upload's bytes from its first, of which the
			// checkpoint is.
			key := st.Object
			if !st.Multipart {
				key = d.dataKey(id)
			}
			if err := d.putSum(ctx, key, tail, false, checkpointSum(st.Checkpoint, int64(len(tail)))); err != nil {
				return err
			}
			st.Object = key
		}
		if st.MultipartID != "" {
			// Parts of an Append that was undone.
			if err := d.abort(ctx, st); err != nil {
				return err
			}
		}
	} else {
		parts := st.Parts
		if st.TailSize > 0 {
			n := int32(len(parts) + 1)
			var p part
			var err error
			if copyTail {
				p, err = d.copyPart(ctx, st, n, st.Tail[0])
				if notImplemented(err) {
					copyTail = false
				}
			}
			if !copyTail {
				if err = readTail(); err != nil {
					return err
				}
				p, err = d.uploadPart(ctx, st, n, tail)
			}
			if err != nil {
				return err
			}
			parts = append(slices.Clone(parts), p)
		}
		done := make([]types.CompletedPart, len(parts))
		for i, p := range parts {
			done[i] = types.CompletedPart{PartNumber: aws.Int32(p.N), ETag: aws.String(p.ETag)}
		}
		_, err := d.c.CompleteMultipartUpload(ctx, &s3api.CompleteMultipartUploadInput{
			Bucket: &d.bucket, Key: &st.Object, UploadId: &st.MultipartID,
			MultipartUpload: &types.CompletedMultipartUpload{Parts: done},
		})
		if err != nil {
			return err
		}
	}
	stale := st.Tail
	if st.Prev != nil {
		stale = append(slices.Clone(stale), st.Prev.Tail...)
	}
	st.Sealed, st.MultipartID, st.Prev = true, "", nil
	st.bytesOf = bytesOf{Size: st.Size, Checkpoint: st.Checkpoint}
	if err := d.writeState(ctx, id, st); err != nil {
		return err
	}
	d.dropTail(ctx, stale, st)
	return nil
}

// RemoveUpload aborts the upload's multipart upload, deletes its data
// object unless a blob's index names it, then what it holds under its
// prefix (what its state names, or, without a state, whatever is listed
// there), the state object last so that an interrupted removal can be
// done again.
func (d *Driver) RemoveUpload(id string) error {
	ctx := context.Background()
	if err := validID(id); err != nil {
		return err
	}
	st, err := d.readState(ctx, id)
	if err != nil && !errors.Is(err, driver.ErrNotFound) && !errors.Is(err, ErrCorrupt) {
		return err
	}
	if st != nil {
		if st.MultipartID != "" {
			if err := d.abort(ctx, st); err != nil {
				return err
			}
		}
		if st.Multipart {
			if err := d.abortAll(ctx, st.Object); err != nil {
				return err
			}
		}
		// An index this request's Promote wrote names the data object:
		// it is not read again.
		keep := st.Promoting != "" && d.created(id, st.Promoting)
		if st.Promoting != "" && !keep {
			ix, err := d.readIndex(ctx, st.Promoting)
			if err != nil && !errors.Is(err, driver.ErrNotFound) {
				return err
			}
			keep = err == nil && ix.Object == st.Object
		}
		if st.Promoting == "" {
			// Promote wrote no mark if dg is the checkpoint's digest.
			dg, err := d.promoting(ctx, id, st)
			if err != nil {
				return err
			}
			keep = dg != ""
		}
		if !keep {
			if err := d.del(ctx, st.Object); err != nil {
				return err
			}
		}
	}
	var keys []string
	if st != nil {
		// The keys the state names are all this upload wrote under its
		// prefix (and segments once in place) but what an Append that
		// failed wrote and never named: once the state is gone, Strays
		// lists those.
		keys = st.ownKeys(d.uploadPrefix(id), d.key("data", id+"-"))
	} else {
		err = d.list(ctx, d.uploadPrefix(id), "", func(key string, _ int64) error {
			if key != d.stateKey(id) {
				keys = append(keys, key)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	for _, k := range keys {
		if err := d.del(ctx, k); err != nil {
			return err
		}
	}
	if err := d.delState(ctx, id); err != nil {
		return err
	}
	d.keepState(id, nil)
	return nil
}
