//! The duration type of the spec: a Go-style string such as `10m`, validated by the API server
//! (pattern and CEL) and parsed here. Plain data.

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

/// A Go-style duration such as `30s`, `10m`, `48h` or `1h30m`; always greater than zero.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct Duration(pub String);

impl Duration {
    pub fn parse(&self) -> Result<chrono::Duration, String> {
        let std =
            humantime::parse_duration(&self.0).map_err(|e| format!("invalid duration {:?}: {e}", self.0))?;
        let d =
            chrono::Duration::from_std(std).map_err(|e| format!("duration {:?} is too long: {e}", self.0))?;
        if d <= chrono::Duration::zero() {
            return Err(format!("duration {:?} must be greater than zero", self.0));
        }
        Ok(d)
    }
}

impl JsonSchema for Duration {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }
    fn inline_schema() -> bool {
        true
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "maxLength": 32,
            "pattern": "^([0-9]+(ms|s|m|h))+$",
            "description": "A duration such as 30s, 10m, 48h or 1h30m.",
            "x-kubernetes-validations": [
                {"rule": "duration(self) > duration('0s')", "message": "duration must be greater than zero"}
            ]
        })
    }
}
