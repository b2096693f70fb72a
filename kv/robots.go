package kv

import (
	"encoding/json"
	"fmt"
)

// Robot is a robot account: a name with a secret (kept as its SHA-256
// alone), the repositories (patterns) and actions its tokens may be
// granted, and its life. Times are Unix ns; Revoked and LastUsed are 0
// when it never was. Which names, patterns and actions are valid is
// decided by whoever writes it, not here.
type Robot struct {
	Name     string   `json:"-"` // the key
	Hash     []byte   `json:"hash"`
	Repos    []string `json:"repos"`
	Actions  []string `json:"actions"`
	Created  int64    `json:"created"`
	Expires  int64    `json:"expires"`
	Revoked  int64    `json:"revoked,omitempty"`
	LastUsed int64    `json:"lastUsed,omitempty"`
}

func decodeRobot(name string, v []byte) (Robot, error) {
	var r Robot
	if err := json.Unmarshal(v, &r); err != nil {
		return Robot{}, fmt.Errorf("%w: robot %q: %v", ErrCorrupt, name, err)
	}
	r.Name = name
	return r, nil
}

// Robot reads one robot account; ok is false when there is none by that
// name.
func (t *Tx) Robot(name string) (Robot, bool, error) {
	v, err := t.b.Get(tableRobots, []byte(name))
	if err != nil || v == nil {
		return Robot{}, false, err
	}
	r, err := decodeRobot(name, v)
	return r, err == nil, err
}

// PutRobot writes a robot account, replacing the one of the same name.
func (t *Tx) PutRobot(r Robot) error {
	if r.Name == "" {
		return fmt.Errorf("kv: robot without a name")
	}
	v, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return t.b.Put(tableRobots, []byte(r.Name), v)
}

// Robots reads every robot account, ordered by name.
func (t *Tx) Robots() ([]Robot, error) {
	var out []Robot
	err := t.b.Scan(tableRobots, nil, func(k, v []byte) (bool, error) {
		r, err := decodeRobot(string(k), v)
		if err != nil {
			return false, err
		}
		out = append(out, r)
		return true, nil
	})
	return out, err
}

// DeleteRobot removes a robot account, if there is one by that name.
func (t *Tx) DeleteRobot(name string) error {
	return t.b.Delete(tableRobots, []byte(name))
}
