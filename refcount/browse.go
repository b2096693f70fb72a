package refcount

import (
	"time"

	"github.com/kvreg/kvreg/kv"
)

// The reads of the web UI: a page of repositories, a page of one
// repository's tags, and one manifest with what it references and what
// refers to it. Each is one read-only transaction and reads only what its
// page shows.

// RepoQuery selects a page of the repository list.
type RepoQuery struct {
	Contains string // case-insensitive substring of the name; "" = all
	Offset   int    // rows to skip (after filtering)
	Limit    int    // rows to return (<= 0: 50)
	// Visible, when set, refuses repositories the caller may not see:
	// they are neither listed nor counted.
	Visible func(repo string) bool
}

// RepoRow is one repository of the list.
type RepoRow struct {
	Name string
	kv.RepoStats
	LastPush time.Time // the newest manifest's Created; zero when none
	Cached   bool      // under a pull-through cache prefix
	// UniqueUnknown: UniqueBytes was not computed (left 0), the page's
	// repositories having more links than one read looks at; show it as
	// unknown.
	UniqueUnknown bool
}

// RepoPage is a page of repositories, in name order.
type RepoPage struct {
	Rows  []RepoRow
	Total int // rows matching the query, all pages
}

// TagQuery selects a page of a repository's tags, in name order.
type TagQuery struct{ Offset, Limit int } // Limit <= 0: 100

// TagView is one tag of a repository's page.
type TagView struct {
	Tag, Digest, MediaType, ArtifactType string
	Size                                 int64 // the manifest, its children and their blobs, each once
	Created                              time.Time
	Platforms                            []string // an index's children's, "os/arch[/variant]"
}

// TagPage is a page of a repository's tags.
type TagPage struct {
	Repo   string
	Cached bool
	Stats  kv.RepoStats
	Tags   []TagView
	Total  int // tags in the repository
	// UniqueUnknown: Stats.UniqueBytes was not computed (left 0), the
	// repository having more links than one read looks at.
	UniqueUnknown bool
}

// BlobView is a blob as a manifest's page shows it.
type BlobView struct {
	Digest, MediaType string
	Size              int64
	Images            int64 // manifests, over every repository, that reference it
	Repos             int   // repositories linking it
}

// ChildView is one manifest of an index.
type ChildView struct {
	Digest, MediaType, Platform string
	Size                        int64
}

// ReferrerNode is a manifest whose subject is the one above it.
type ReferrerNode struct {
	Digest, MediaType, ArtifactType string
	Size                            int64
	Created                         time.Time
	Annotations                     map[string]string
	Referrers                       []ReferrerNode
}

// ManifestView is one manifest with what it references and what refers
// to it.
type ManifestView struct {
	Repo, Digest, MediaType, ArtifactType string
	Size                                  int64 // the manifest's bytes
	ImageSize                             int64 // as TagView.Size
	Created                               time.Time
	Content                               []byte
	Tags                                  []string // tags of Repo naming it
	Config                                *BlobView
	Layers                                []BlobView // in manifest order
	Children                              []ChildView
	Subject                               string
	Annotations                           map[string]string
	Referrers                             []ReferrerNode
}
