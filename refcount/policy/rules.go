package policy

import (
	"fmt"
	"strings"
	"time"
)

// Immutable makes the tags matching Tags, in the repositories matching
// Repos, immutable: once a tag names a manifest, nothing moves or
// deletes it (pushing the same content again is no change).
type Immutable struct {
	Repos []string `yaml:"repos"`
	Tags  []string `yaml:"tags"`
}

// Retention says which tags of the repositories matching Repos are kept;
// the rest are removed. Tags matching KeepTags, and immutable tags, are
// never removed and do not count. Of the others, the KeepLast most
// recently pushed are kept (0: no count limit); with KeepPulledWithin,
// so is any whose image was pulled within it (without KeepLast, pushed
// within it too, so that a new tag gets its time to be pulled).
type Retention struct {
	Repos            []string      `yaml:"repos"`
	KeepLast         int           `yaml:"keep-last"`
	KeepPulledWithin time.Duration `yaml:"keep-pulled-within"`
	KeepTags         []string      `yaml:"keep-tags"`
}

// Quota caps what the repositories matching Repos store together (one
// namespace): MaxBytes of distinct blobs reachable from their manifests
// plus the manifests' bytes, and MaxTags tags (0: no cap).
type Quota struct {
	Repos    []string `yaml:"repos"`
	MaxBytes Size     `yaml:"max-bytes"`
	MaxTags  int64    `yaml:"max-tags"`
}

// String names the rule in messages.
func (i Immutable) String() string {
	return fmt.Sprintf("immutable repos [%s] tags [%s]", strings.Join(i.Repos, " "), strings.Join(i.Tags, " "))
}

// String names the rule in messages.
func (r Retention) String() string {
	s := fmt.Sprintf("retention repos [%s]", strings.Join(r.Repos, " "))
	if r.KeepLast > 0 {
		s += fmt.Sprintf(" keep-last %d", r.KeepLast)
	}
	if r.KeepPulledWithin > 0 {
		s += fmt.Sprintf(" keep-pulled-within %v", r.KeepPulledWithin)
	}
	if len(r.KeepTags) > 0 {
		s += fmt.Sprintf(" keep-tags [%s]", strings.Join(r.KeepTags, " "))
	}
	return s
}

// String names the rule in messages.
func (q Quota) String() string {
	return fmt.Sprintf("quota repos [%s]", strings.Join(q.Repos, " "))
}

// Active reports whether the rule can remove anything.
func (r Retention) Active() bool { return r.KeepLast > 0 || r.KeepPulledWithin > 0 }

func validRepos(what string, i int, repos []string) error {
	if len(repos) == 0 {
		return fmt.Errorf("%w: %s rule %d: no repos", ErrRule, what, i+1)
	}
	for _, p := range repos {
		if err := ValidRepoPattern(p); err != nil {
			return fmt.Errorf("%s rule %d: %w", what, i+1, err)
		}
	}
	return nil
}

func validTags(what string, i int, tags []string) error {
	for _, p := range tags {
		if err := ValidTagPattern(p); err != nil {
			return fmt.Errorf("%s rule %d: %w", what, i+1, err)
		}
	}
	return nil
}

func (im Immutable) validate(i int) error {
	if err := validRepos("immutable", i, im.Repos); err != nil {
		return err
	}
	if len(im.Tags) == 0 {
		return fmt.Errorf("%w: immutable rule %d: no tags", ErrRule, i+1)
	}
	return validTags("immutable", i, im.Tags)
}

func (r Retention) validate(i int) error {
	if err := validRepos("retention", i, r.Repos); err != nil {
		return err
	}
	if r.KeepLast < 0 {
		return fmt.Errorf("%w: retention rule %d: keep-last %d is negative", ErrRule, i+1, r.KeepLast)
	}
	if r.KeepPulledWithin < 0 {
		return fmt.Errorf("%w: retention rule %d: keep-pulled-within %v is negative", ErrRule, i+1, r.KeepPulledWithin)
	}
	if !r.Active() {
		return fmt.Errorf("%w: retention rule %d: neither keep-last nor keep-pulled-within, so it would keep everything", ErrRule, i+1)
	}
	return validTags("retention", i, r.KeepTags)
}

func (q Quota) validate(i int) error {
	if err := validRepos("quota", i, q.Repos); err != nil {
		return err
	}
	if q.MaxBytes < 0 {
		return fmt.Errorf("%w: quota rule %d: max-bytes %d is negative", ErrRule, i+1, q.MaxBytes)
	}
	if q.MaxTags < 0 {
		return fmt.Errorf("%w: quota rule %d: max-tags %d is negative", ErrRule, i+1, q.MaxTags)
	}
	return nil
}
