//! The worker: registration, assignment sync, the run loop and the result spool.
//!
//! Not built yet: see the scheduler issue. Until then `probenet run` runs checks once from this machine.
