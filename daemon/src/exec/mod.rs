//! Running an allowed command: the executable check (`check`), the environment (`env`), the
//! hand-over of what the client sent into an exec plan (`spawn`), and supervision until it
//! exits (`supervise`).

pub mod check;
pub mod env;
pub mod spawn;
pub mod supervise;

pub use spawn::Plan;
