//! End-to-end tests of coper live in `e2e/`: they start the real `coper-server` binary on a free
//! port with a temporary database and talk to it as other tools do. This library is empty.
