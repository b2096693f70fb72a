package auth

import "errors"

var (
	// ErrHtpasswd: the htpasswd file cannot be used.
	ErrHtpasswd = errors.New("htpasswd")
	// ErrNotBcrypt: a line of the htpasswd file holds another kind of hash.
	ErrNotBcrypt = errors.New("not a bcrypt hash (create it with `htpasswd -B`)")
	// ErrRule: an access rule is malformed.
	ErrRule = errors.New("access rule")
)

var (
	// ErrRobot: a robot account's name, patterns, actions or lifetime are
	// malformed.
	ErrRobot = errors.New("invalid robot")
	// ErrRobotUnknown: no robot of that name.
	ErrRobotUnknown = errors.New("no such robot")
	// ErrBadSecret: the secret presented is not the robot's.
	ErrBadSecret = errors.New("wrong robot secret")
	// ErrRobotRevoked: the robot was revoked.
	ErrRobotRevoked = errors.New("robot revoked")
	// ErrRobotExpired: the robot's lifetime is over.
	ErrRobotExpired = errors.New("robot expired")
)
