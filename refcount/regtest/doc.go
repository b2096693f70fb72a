// Package regtest opens registries for tests: the one way that the tests of
// refcount, api and cmd get a Registry over real backends, with a settable
// clock, and with the invariants checked (a deep fsck) when the test ends.
//
// Two dimensions choose the backends: KVREG_TEST_BACKENDS the metadata
// store (bbolt, PostgreSQL) and KVREG_TEST_BLOBS the blob store (the local
// directory, or a bucket of its own per registry on a versitygw server the
// test binary starts). A test that must look at files on disk pins the
// local blob store (Options.Blobs); the others see stored bytes through
// Registry.Blobs() or, below kvreg's driver, through StoredFiles.
//
// It owns nothing of the store: it opens one through refcount exactly as the
// binary does, and it reads the store only through refcount's own calls and,
// for StoredFiles, the files the storage keeps. It must not be imported by
// non-test code.
package regtest
