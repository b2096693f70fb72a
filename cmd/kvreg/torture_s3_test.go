package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kvreg/kvreg/kv"
	"github.com/kvreg/kvreg/refcount"
)

// The torture with the blob bytes in an S3 bucket (versitygw), some images
// sharing layers of several parts pushed in chunks, so that kills land in
// the middle of multipart uploads. After every restart fsck --deep with the
// same --blob-store is clean, and the bucket, looked at under the S3 API,
// holds nothing that no part of kvreg's layout names.
func TestKill9TortureS3(t *testing.T) {
	srv, bucket, at := s3Bucket(t)
	store := at(srv.Endpoint)
	rnd := rand.New(rand.NewSource(7))
	var big [][]byte
	// One and two full parts of the driver's default 8 MiB, and a tail.
	for _, n := range []int{9<<20 + 123, 17<<20 + 45} {
		b := make([]byte, n)
		rnd.Read(b)
		big = append(big, b)
	}
	dir := filepath.Join(srv.Dir, bucket)
	kill9Torture(t, tortureRounds(t, 10), tortureConfig{
		flags: []string{"--blob-store", store},
		deep:  true,
		big:   big,
		// An operation on S3 takes tens of requests: later kills, so
		// that rounds see many operations through.
		kill: [2]time.Duration{400 * time.Millisecond, 2 * time.Second},
		check: func(t *testing.T, round int, root string) {
			states, err := uploadStates(filepath.Join(root, refcount.DBFile))
			if err != nil {
				t.Fatal(err)
			}
			left, err := bucketLeftovers(dir, "kvreg", states)
			if err != nil {
				t.Fatal(err)
			}
			for kind, paths := range left {
				if kind == cutAppend || kind == unrecordedMultipart || kind == committedSegments {
					t.Logf("round %d: the bucket holds %d %s: %v", round, len(paths), kind, paths)
					continue
				}
				t.Errorf("round %d: the bucket holds %d %s: %v", round, len(paths), kind, paths)
			}
		},
	})
}

// cutAppend is the kind of leftover a kill between an Append's tail
// segment and its state leaves (the upload's next Append overwrites it:
// segments are named after the state's generation), or a kill before the
// delete of a segment a newer state no longer names: an object under a
// live upload's prefix, which the upload's removal deletes with the
// prefix. It is not a leak.
const cutAppend = "segments of a cut Append under a live upload"

// committedSegments is the kind of leftover a kill between a commit's
// record (whose transaction removes the upload's state) and the removal of
// the rest of the upload leaves: tail segments under the prefix of an
// upload whose data object an index names. Nothing names them; they are
// strays, which the sweeps remove once older than the grace.
const committedSegments = "segments of an upload whose blob was recorded"

// unrecordedMultipart is the kind of leftover a kill between the create
// of a multipart upload and the state that records it leaves: the state
// says the upload has begun multipart uploads of its data object, whose
// key is the upload's alone, and its removal aborts every one of that key.
// It is not a leak either.
const unrecordedMultipart = "multipart uploads a live upload will abort by their key"

// bucketLeftovers walks versitygw's directory of a bucket and returns, by
// kind, what nothing in kvreg's layout under prefix names: it reads the
// bucket as stored, not through kvreg.
//
// versitygw's posix backend keeps an object as a regular file at
// <bucket>/<key> (metadata such as the etag in extended attributes), key
// prefixes as directories. A multipart upload in progress is a directory
// <bucket>/.sgwtmp/multipart/<hex sha256 of the key>/<upload id>/ holding
// one file per uploaded part, named by its number; the hashed directory
// carries the key in the extended attribute user.objname, and may stay
// behind, empty, once its uploads are completed or aborted, which remove
// the upload id's directory. Other files under .sgwtmp are writes in
// progress.
//
// Named are: the tail segments and the data object and multipart upload
// an upload's state names (states: the database's, by upload id); an
// index (blobs/<alg>/<hex>) and the data object it names; the key of
// upload tokens (keys/uploads). An object under uploads/ is a state's
// only where kvreg kept states in the bucket, before the database did.
func bucketLeftovers(dir, prefix string, states map[string][]byte) (map[string][]string, error) {
	type stateObj struct {
		Object      string `json:"object"`
		MultipartID string `json:"multipartId"`
		Multipart   bool   `json:"multipart"`
		Tail        []struct {
			Key string `json:"key"`
		} `json:"tail"`
		Prev *struct {
			Tail []struct {
				Key string `json:"key"`
			} `json:"tail"`
		} `json:"prev"`
	}
	var objects, uploads []string // keys; multipart uploads as keyhash/id
	err := filepath.WalkDir(dir, func(p string, e os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel := filepath.ToSlash(strings.TrimPrefix(p, dir+string(filepath.Separator)))
		if tmp, ok := strings.CutPrefix(rel, ".sgwtmp/multipart/"); ok {
			if e.IsDir() && strings.Count(tmp, "/") == 1 {
				uploads = append(uploads, tmp)
				return filepath.SkipDir
			}
			if !e.IsDir() {
				objects = append(objects, rel)
			}
			return nil
		}
		if e.Type().IsRegular() {
			objects = append(objects, rel)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	named := map[string]bool{} // keys
	mpu := map[string]bool{}   // keyhash/id
	indexed := map[string]string{}
	owner := map[string]bool{} // data objects whose upload aborts all theirs
	live := map[string]bool{}  // upload prefixes (<prefix>/uploads/<id>) with a state
	for id, b := range states {
		var st stateObj
		if err := json.Unmarshal(b, &st); err != nil {
			return nil, fmt.Errorf("state of upload %s: %v", id, err)
		}
		live[prefix+"/uploads/"+id] = true
		named[st.Object] = true
		for _, sg := range st.Tail {
			named[sg.Key] = true
		}
		if st.Prev != nil {
			for _, sg := range st.Prev.Tail {
				named[sg.Key] = true
			}
		}
		if st.Multipart {
			owner[st.Object] = true
		}
		if st.MultipartID != "" {
			sum := sha256.Sum256([]byte(st.Object))
			mpu[hex.EncodeToString(sum[:])+"/"+st.MultipartID] = true
		}
	}
	for _, k := range objects {
		rest, ok := strings.CutPrefix(k, prefix+"/")
		if !ok {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(k)))
		if err != nil {
			return nil, err
		}
		switch {
		case rest == "keys/uploads":
			named[k] = true
		case strings.HasPrefix(rest, "blobs/"):
			var ix struct {
				Object string `json:"object"`
			}
			if err := json.Unmarshal(b, &ix); err != nil {
				return nil, fmt.Errorf("%s: %v", k, err)
			}
			named[k], named[ix.Object] = true, true
			indexed[k] = ix.Object
		}
	}
	committed := map[string]bool{} // upload ids whose data object an index names
	for _, obj := range indexed {
		if id, _, ok := strings.Cut(strings.TrimPrefix(obj, prefix+"/data/"), "-"); ok {
			committed[id] = true
		}
	}
	left := map[string][]string{}
	for _, k := range objects {
		if named[k] {
			continue
		}
		rest, _ := strings.CutPrefix(k, prefix+"/")
		kind := "objects outside kvreg's layout"
		switch {
		case strings.HasPrefix(k, ".sgwtmp/"):
			kind = "writes in progress on the server"
		case strings.HasPrefix(rest, "data/"):
			kind = "data objects no index or upload state names"
		case strings.HasPrefix(rest, "uploads/") && live[path.Dir(k)]:
			kind = cutAppend
		case strings.HasPrefix(rest, "uploads/") && committed[path.Base(path.Dir(k))]:
			kind = committedSegments
		case strings.HasPrefix(rest, "uploads/"):
			kind = "upload objects without a state in the database"
		}
		left[kind] = append(left[kind], k)
	}
	for ix, obj := range indexed {
		if !slices.Contains(objects, obj) {
			left["indexes naming a missing data object"] = append(left["indexes naming a missing data object"], ix)
		}
	}
	for _, u := range uploads {
		if mpu[u] {
			continue
		}
		// Name it by its key, and say whether that key is a live
		// upload's data object.
		kind := "multipart uploads of a key no upload state names"
		v := make([]byte, 1024)
		n, err := syscall.Getxattr(filepath.Join(dir, ".sgwtmp", "multipart", path.Dir(u)), "user.objname", v)
		if err == nil {
			key := string(v[:n])
			switch {
			case owner[key]:
				kind = unrecordedMultipart
			case named[key]:
				kind = "multipart uploads of a live upload's data object that its state does not name"
			}
			u = key + " " + path.Base(u)
		}
		left[kind] = append(left[kind], u)
	}
	return left, nil
}

// uploadStates reads the upload states of the bbolt database at path,
// opened read-only (kvreg stopped).
func uploadStates(path string) (map[string][]byte, error) {
	db, err := kv.Open(path, kv.Options{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer db.Close()
	out := map[string][]byte{}
	err = db.View(func(tx *kv.Tx) error {
		return tx.UploadStates(func(id string, st []byte) (bool, error) {
			out[id] = st
			return true, nil
		})
	})
	return out, err
}
