//! What every layer of a run uses to talk to the runner and the outside world, and nothing
//! else: workflow commands, log groups and masks (`console`), the one redactor (`redact`), the
//! one HTTP client (`http`) and the run's signals and cancellation (`shutdown`). It sits below
//! `image/`, `deploy/` and `report/` and imports none of them.

pub mod console;
pub mod http;
pub mod redact;
pub mod shutdown;
