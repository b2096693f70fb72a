package authstore

import (
	"fmt"
	"time"

	"github.com/kvreg/kvreg/api/auth"
	"github.com/kvreg/kvreg/kv"
)

// RobotSpec is what an operator asks of a new robot.
type RobotSpec struct {
	Name     string
	Repos    []string
	Actions  []auth.Action
	Lifetime time.Duration
}

// ParseRobotSpec checks an operator's request as written: the name,
// comma-separated patterns and actions, and a lifetime (90d, 720h).
// Errors wrap auth.ErrRobot.
func ParseRobotSpec(name, repos, actions, lifetime string) (RobotSpec, error) {
	if err := auth.ValidRobotName(name); err != nil {
		return RobotSpec{}, err
	}
	rs, err := auth.ParseRobotRepos(repos)
	if err != nil {
		return RobotSpec{}, err
	}
	as, err := auth.ParseRobotActions(actions)
	if err != nil {
		return RobotSpec{}, err
	}
	d, err := auth.ParseLifetime(lifetime)
	if err != nil {
		return RobotSpec{}, err
	}
	return RobotSpec{Name: name, Repos: rs, Actions: as, Lifetime: d}, nil
}

// RobotInfo is what an operator is shown of a robot: everything but its
// hash. Revoked and LastUsed are absent when it never was.
type RobotInfo struct {
	Name     string     `json:"name"`
	Repos    []string   `json:"repos"`
	Actions  []string   `json:"actions"`
	Created  time.Time  `json:"created"`
	Expires  time.Time  `json:"expires"`
	Revoked  *time.Time `json:"revoked,omitempty"`
	LastUsed *time.Time `json:"lastUsed,omitempty"`
}

// NewRobot is CreateRobot's answer: the robot, and its secret, which is
// shown this once and kept nowhere.
type NewRobot struct {
	Robot  RobotInfo `json:"robot"`
	Secret string    `json:"secret"`
}

// CreateRobot makes a robot with a new secret, living from now for the
// spec's lifetime. A name already taken, revoked or not, is refused
// (ErrRobotExists).
func CreateRobot(db *kv.DB, spec RobotSpec, now time.Time) (NewRobot, error) {
	secret, hash, err := auth.NewRobotSecret()
	if err != nil {
		return NewRobot{}, err
	}
	acts := make([]string, len(spec.Actions))
	for i, a := range spec.Actions {
		acts[i] = string(a)
	}
	rec := kv.Robot{Name: spec.Name, Hash: hash, Repos: spec.Repos, Actions: acts,
		Created: now.UnixNano(), Expires: now.Add(spec.Lifetime).UnixNano()}
	err = db.Update(func(tx *kv.Tx) error {
		if _, ok, err := tx.Robot(spec.Name); err != nil || ok {
			if ok {
				err = fmt.Errorf("%w: %q", ErrRobotExists, spec.Name)
			}
			return err
		}
		return tx.PutRobot(rec)
	})
	if err != nil {
		return NewRobot{}, err
	}
	return NewRobot{Robot: info(rec), Secret: secret}, nil
}

// Robots lists every robot, by name.
func Robots(db *kv.DB) ([]RobotInfo, error) {
	var recs []kv.Robot
	err := db.View(func(tx *kv.Tx) error {
		var err error
		recs, err = tx.Robots()
		return err
	})
	out := make([]RobotInfo, 0, len(recs))
	for _, r := range recs {
		out = append(out, info(r))
	}
	return out, err
}

// RevokeRobot marks a robot revoked at now; its record stays, so that ls
// shows it and its name is not taken again. Revoking it again keeps the
// first time.
func RevokeRobot(db *kv.DB, name string, now time.Time) (RobotInfo, error) {
	var rec kv.Robot
	err := db.Update(func(tx *kv.Tx) error {
		r, ok, err := tx.Robot(name)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%w: %q", ErrRobotUnknown, name)
		}
		if r.Revoked == 0 {
			r.Revoked = now.UnixNano()
			if err := tx.PutRobot(r); err != nil {
				return err
			}
		}
		rec = r
		return nil
	})
	if err != nil {
		return RobotInfo{}, err
	}
	return info(rec), nil
}

// Robot reads a robot as the auth rules see it; ok is false when there is
// none of that name.
func Robot(db *kv.DB, name string) (r auth.Robot, ok bool, err error) {
	err = db.View(func(tx *kv.Tx) error {
		rec, found, err := tx.Robot(name)
		if err != nil || !found {
			ok = false
			return err
		}
		r, ok = toAuth(rec), true
		return nil
	})
	return r, ok, err
}

// TouchRobot records that a robot was given a token at now. It writes
// only when the last record is older than a minute, so that a busy robot
// does not rewrite its row at every login.
func TouchRobot(db *kv.DB, name string, now time.Time) error {
	return db.Update(func(tx *kv.Tx) error {
		r, ok, err := tx.Robot(name)
		if err != nil || !ok || now.UnixNano()-r.LastUsed < int64(time.Minute) {
			return err
		}
		r.LastUsed = now.UnixNano()
		return tx.PutRobot(r)
	})
}

func toAuth(r kv.Robot) auth.Robot {
	acts := make([]auth.Action, len(r.Actions))
	for i, a := range r.Actions {
		acts[i] = auth.Action(a)
	}
	return auth.Robot{Name: r.Name, Hash: r.Hash, Repos: r.Repos, Actions: acts,
		Created: unixTime(r.Created), Expires: unixTime(r.Expires), Revoked: unixTime(r.Revoked), LastUsed: unixTime(r.LastUsed)}
}

func info(r kv.Robot) RobotInfo {
	return RobotInfo{Name: r.Name, Repos: r.Repos, Actions: r.Actions,
		Created: unixTime(r.Created), Expires: unixTime(r.Expires), Revoked: optTime(r.Revoked), LastUsed: optTime(r.LastUsed)}
}

// unixTime turns Unix ns into a time, 0 into the zero time.
func unixTime(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns).UTC()
}

func optTime(ns int64) *time.Time {
	if ns == 0 {
		return nil
	}
	t := unixTime(ns)
	return &t
}
