//! No code: this package holds upstream zmq.rs's libzmq compliance tests (tests/),
//! run against distlog's zeromq fork. See README.md.
