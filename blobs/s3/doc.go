// Package s3 stores kvreg's blobs and upload bytes in an S3 bucket: the
// implementation of blobs/driver over S3-compatible object storage (AWS S3,
// Ceph RGW, SeaweedFS, versitygw, ...). It owns the layout of the bucket
// (under an optional prefix) and the S3 client; it must not know about
// repositories' metadata, hashing or verification, which stay in blobs. It
// is the only package of kvreg that imports an S3 client.
//
// The client is aws-sdk-go-v2: it is the reference implementation of the
// protocol (signing, retries with backoff of 503 SlowDown, presigning for
// redirects) and lets every behaviour S3-compatible servers disagree on be
// set explicitly: checksums are computed and validated only when an
// operation requires them (many servers reject the default CRC32
// trailers) and addressing is path-style for non-AWS endpoints. A small
// object's GET, PUT and DELETE, most of the driver's requests, are built
// and signed by the driver itself and sent over the SDK's HTTP client,
// with the SDK's retryer and signer: the SDK's middleware stack cost more
// CPU than the request (direct.go). Every
// write's payload is signed with its sha256, over plain HTTP too, and the
// server checks it; the driver hands the signer that sum rather than let
// the SDK hash the bytes again: for an upload's first bytes (a segment in
// place, the first part, the data object written whole at Seal) it is the
// sum of the caller's checkpoint when that is a sha256 of exactly them (a
// checkpoint of other bytes then fails the write, never stores them), and
// otherwise the driver hashes the payload once (payload.go). A redirect's
// URL is signed by the SDK's SigV4 signer alone, at the bucket's URL that
// one presign through the SDK resolved once: the SDK's own presign runs a
// whole request's middleware for each URL (presign.go).
//
// Upload states in the database cost a statement where an object costs a
// request to the bucket (a one-chunk blob's push: 2 requests rather than 5),
// are read consistently by every process, and let the sweeps find uploads
// without listing the bucket. Wherever the text below says "state object",
// it means the state where it is kept; a write "only if no state object
// exists" is then a create that the database refuses when the row exists.
// Every other write of a state there replaces only the state as the writer
// read it (driver.States.PutState): a chunk that read the upload before a
// commit through another process recorded it and removed its state fails
// (driver.ErrStale) rather than write the state back, which would make the
// upload resumable again over the data object its blob's index names.
// A commit's state is removed by the transaction that records the blob,
// after Promote wrote the index (StateRemoved); the RemoveUpload that
// follows in the same request deletes the rest of the upload from the
// held copy. A crash between the two leaves the upload's tail segments
// named by nothing: strays.
//
// Layout, objects named per upload and never per digest:
//
//	data/<id>-<nonce>        an upload's bytes: a multipart upload completed at Seal,
//	                         the tail written whole at Seal, or, before Seal, its
//	                         first tail segment (in place)
//	uploads/<id>/state       an upload's state (JSON), unless the driver keeps
//	                         states in the registry's database (KeepStates, what
//	                         a registry does; one row per upload, the same JSON):
//	                         repository, size, multipart id, parts with their
//	                         etags, tail, promoting digest, and the caller's
//	                         checkpoint of the bytes (the running sha256, so an
//	                         upload resumes after a restart without reading back
//	                         parts S3 gives back only after Seal)
//	uploads/<id>/tail-<gen>-<nonce>  a segment of the bytes after the last full part
//	blobs/<alg>/<hex>        a blob's index: the data object that holds its bytes
//	keys/uploads             the key (32 random bytes, made once per bucket by a
//	                         conditional write) of the tokens of uploads started
//	                         with no state object yet (deferred.go)
//
// A blob is found from its digest through its index object, written by
// Promote only after blobs verified the upload, and only if none exists
// (Promote's "created"). A reader trusts only a data object an index names,
// and an index never changes once written: a later, bad upload of the same
// digest writes its own data object, which no index names, so it can never
// damage the good copy. The index is written on the condition that none
// exists (If-None-Match); a server that might not honour that (a probe
// object written twice, once per process, at the first Ping or Promote,
// says) has the index looked for first. PromoteLocated gives the data
// object's key of a blob it created to the caller, who records it with
// the blob, and a redirect is signed from that key with no request
// (PresignGetIncarnation); Open and Remove read the index. Promote copies no bytes (a server-side copy is the
// long pause at the end of a large push, and is limited to 5 GB); Unpromote
// removes the index only if it names the upload's own data object.
//
// Before an index is written, the upload's state must say which digest it
// is being promoted to, so that after a crash the index can be found and,
// if the blob was never recorded, unpromoted. The state the upload's last
// Append wrote says it already when the digest is the sha256 its
// checkpoint is of (blobs verifies a sha256 digest with that same running
// hash): Promote then writes no state, and the upload reads as promoting
// to that digest (Upload, RemoveUpload) once the digest's index names its
// data object, which only its own Promote writes (data objects are named
// per upload) and no index is ever rewritten. Nothing between that Append
// and the index changes the state's object, size or checkpoint (a Seal
// that writes the state keeps them). Any other digest marks the state
// first, as the promoting digest. An index found at Promote that names the
// upload's own data object is its own, from a commit that died after
// writing it: Promote reports it created, so that a commit sent again
// keeps (or, unrecorded, unpromotes) those bytes rather than deleting them
// under the index; unless the upload's state object is gone by then,
// read past the hold: another commit of the upload, sent at once through
// another process, wrote that index, recorded the blob and ended the
// upload, and the blob is not this commit's to take back. An unmarked upload whose bytes are all in its data
// object (sealed, or one segment in place) and whose data object is gone
// reads as promoting too: only a Remove of the blob its Promote created,
// or a RemoveUpload cut short, deletes that object while the state
// stands, so it is dead and is finished as an interrupted commit. Telling
// whether an unmarked upload is promoting costs the read of that index
// and, if it names another object, a HEAD of the data object; Upload pays
// it (the sweeps that finish interrupted commits, once per upload), not
// under a hold, whose request is the one that would promote the upload.
// Those sweeps, and expiry, act only on uploads left alone for a while:
// UploadsWritten lists uploads/ once and reports when each state object
// was last written, its age taken between two readings of the server's
// clock (the listing's Date and the state's LastModified) so that no skew
// between the server's clock and kvreg's makes an old upload look young;
// an upload in flight is then not read at all.
//
// The nonces keep a state and the bytes it vouches for together when
// requests for one upload race on several processes (a client that breaks
// the protocol, or one that means harm): an Append writes its bytes and
// then the state, so two Appends at one offset could each write their
// bytes at one key and their states in the other order, leaving a state
// whose checkpoint is of bytes that are not those at its keys, and a
// commit of that checkpoint's digest would promote them. So every object
// an Append or Seal writes whole (an in-place segment, a tail segment,
// the tail written at Seal) goes to a key that no other write uses, and a
// state names only objects written by its own request or by those whose
// states it read. Parts are safe by their ETags: a part written over by a
// racing request no longer matches the ETag its state lists, and
// CompleteMultipartUpload refuses it.
//
// Uploads stream: Append fills parts of one fixed size (at least 5 MiB, S3's
// minimum) and keeps what is left, shorter than a part, as tail objects
// (one segment per short chunk, so a short chunk writes only its own bytes)
// until a part fills or Seal, so chunks of any size work while a process
// holds at most one part of each upload in memory and nothing on disk. At
// Seal, a tail of one segment after parts becomes the last part by a copy
// on the server (UploadPartCopy, of less than a part), so that its bytes
// are not read back, hashed and sent again; a server that answers it is
// not implemented has them read back and sent. The
// first segment of an upload with no part (and no multipart upload begun)
// is written as the upload's data object, at a new key that the state
// then names, so that Seal of an upload of one chunk shorter than a part
// (most layers and configs) copies nothing; while the state names it as
// its data object, it is deleted only by RemoveUpload, and only if no
// index names it (one that Truncate dropped, or that a later Append
// rewrote into one segment, goes as other segments no state names do). An
// Append writes its parts and segment and then the state; until the state
// is written, the previous state, tail and parts stand, so a failed Append
// leaves the upload as it was (Truncate to that size is then a no-op). The
// state keeps the upload as it was before its last Append too, so that
// Truncate can undo an Append that succeeded but that blobs refuses (a
// chunk longer than announced). State lives in state objects; the state
// is marked before the first multipart upload is created, and only then
// does RemoveUpload list the multipart uploads of the upload's data object
// key, to abort one whose creation was answered to a process that died.
// An upload started with DeferUpload has no state object until its first
// Append (or Seal) writes one, under a hold that Vouch gave the state
// CreateUpload would have written; that first write is made only if no
// state object exists, so that a token sent again once the upload has one
// fails (driver.ErrStale) rather than starting the upload over: its bytes,
// written at a new data object key, are then what nothing names
// (deferred.go).
//
// A process that dies mid-operation can leave what nothing names: a data
// object whose index Remove deleted, the data object of an upload whose
// state is gone, a multipart upload created before its state recorded it,
// tail segments. Strays lists them (names are read after what they name is
// listed, so what stays named is never listed) and RemoveStray removes
// them; callers keep the young ones, which may be in flight. While blobs
// holds an upload for a request (driver.Holder) its state is read once and
// then served from the copy last read or written; Seal of a segment in
// place then writes no state of its own, leaving it to Promote's, if it
// writes one. Walk reports
// each blob with its data object's size, from one listing of data/, and
// leaves out an index whose data object is gone. Both list the indexes
// and read only those whose ETag is not the MD5 of the index a listed data
// object would have.
package s3
