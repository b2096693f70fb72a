package authstore

import (
	"fmt"
	"time"

	"github.com/kvreg/kvreg/api/auth"
	"github.com/kvreg/kvreg/kv"
)

// Checker checks robots' secrets against the store, for the token
// endpoint: the robot as the store holds it at each login, so that a
// revocation on any replica holds at the next login everywhere.
type Checker struct {
	db    *kv.DB
	clock func() time.Time
}

// NewChecker checks robots of db, at the clock's time (time.Now if nil).
func NewChecker(db *kv.DB, clock func() time.Time) *Checker {
	if clock == nil {
		clock = time.Now
	}
	return &Checker{db: db, clock: clock}
}

// CheckRobot returns the robot when secret is its own and it is usable:
// otherwise an error wrapping auth.ErrRobotUnknown, auth.ErrBadSecret,
// auth.ErrRobotRevoked or auth.ErrRobotExpired. A login that succeeds is
// recorded as the robot's last use (at most once a minute); a failure to
// record it does not refuse the login.
func (c *Checker) CheckRobot(name, secret string) (auth.Robot, error) {
	r, ok, err := Robot(c.db, name)
	if err != nil {
		return auth.Robot{}, err
	}
	if !ok {
		return auth.Robot{}, fmt.Errorf("%w: %q", auth.ErrRobotUnknown, name)
	}
	now := c.clock()
	if err := r.Login(secret, now); err != nil {
		return auth.Robot{}, err
	}
	if now.Sub(r.LastUsed) >= time.Minute {
		TouchRobot(c.db, name, now)
	}
	return r, nil
}
