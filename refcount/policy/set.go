package policy

import "errors"

// Set is every rule in force. Within each section the first rule whose
// repos glob matches a repository applies to it. A nil *Set has no rules.
type Set struct {
	Immutables []Immutable
	Retentions []Retention
	Quotas     []Quota
}

// Validate checks every rule: globs, numbers, and that a rule says
// something. The error names the first bad rule of each section.
func (s *Set) Validate() error {
	if s == nil {
		return nil
	}
	var errs []error
	for i, r := range s.Immutables {
		if err := r.validate(i); err != nil {
			errs = append(errs, err)
			break
		}
	}
	for i, r := range s.Retentions {
		if err := r.validate(i); err != nil {
			errs = append(errs, err)
			break
		}
	}
	for i, r := range s.Quotas {
		if err := r.validate(i); err != nil {
			errs = append(errs, err)
			break
		}
	}
	return errors.Join(errs...)
}

// Empty reports whether the set has no rule at all.
func (s *Set) Empty() bool {
	return s == nil || len(s.Immutables)+len(s.Retentions)+len(s.Quotas) == 0
}

// ImmutableRule is the immutable rule that applies to repo, if any.
func (s *Set) ImmutableRule(repo string) (Immutable, bool) {
	if s == nil {
		return Immutable{}, false
	}
	for _, r := range s.Immutables {
		if MatchAny(r.Repos, repo) {
			return r, true
		}
	}
	return Immutable{}, false
}

// ImmutableFor is the rule that makes repo's tag immutable, if one does.
func (s *Set) ImmutableFor(repo, tag string) (Immutable, bool) {
	r, ok := s.ImmutableRule(repo)
	if !ok || !MatchAny(r.Tags, tag) {
		return Immutable{}, false
	}
	return r, true
}

// ImmutableTag reports whether repo's tag is immutable.
func (s *Set) ImmutableTag(repo, tag string) bool {
	_, ok := s.ImmutableFor(repo, tag)
	return ok
}

// Retention is the retention rule that applies to repo, if any.
func (s *Set) Retention(repo string) (Retention, bool) {
	if s == nil {
		return Retention{}, false
	}
	for _, r := range s.Retentions {
		if MatchAny(r.Repos, repo) {
			return r, true
		}
	}
	return Retention{}, false
}

// Quota is the quota that applies to repo, if any.
func (s *Set) Quota(repo string) (Quota, bool) {
	if s == nil {
		return Quota{}, false
	}
	for _, r := range s.Quotas {
		if MatchAny(r.Repos, repo) {
			return r, true
		}
	}
	return Quota{}, false
}

// RetentionRules is the retention section (nil set: none).
func (s *Set) RetentionRules() []Retention {
	if s == nil {
		return nil
	}
	return s.Retentions
}
