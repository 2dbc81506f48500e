//! The identity of this step (flow, execution, step, container, workspace, user, component, function).

use super::env::Env;

/// Identity of this step, copied into outgoing headers.
#[derive(Debug, Clone)]
pub struct StepIdentity {
    /// `ELASTICIO_FLOW_ID` (outgoing `taskId`).
    pub flow_id: String,
    /// `ELASTICIO_EXEC_ID`.
    pub exec_id: String,
    /// `ELASTICIO_STEP_ID`.
    pub step_id: String,
    /// `ELASTICIO_CONTAINER_ID`.
    pub container_id: String,
    /// `ELASTICIO_WORKSPACE_ID`.
    pub workspace_id: String,
    /// `ELASTICIO_USER_ID`.
    pub user_id: String,
    /// `ELASTICIO_COMP_ID`.
    pub comp_id: String,
    /// `ELASTICIO_FUNCTION`: the trigger or action this process runs.
    pub function: String,
}

impl StepIdentity {
    /// The identity; absent variables are pushed onto `missing`.
    pub(super) fn from_env(env: &Env, missing: &mut Vec<String>) -> Self {
        Self {
            flow_id: env.required("FLOW_ID", missing),
            exec_id: env.required("EXEC_ID", missing),
            step_id: env.required("STEP_ID", missing),
            container_id: env.required("CONTAINER_ID", missing),
            workspace_id: env.required("WORKSPACE_ID", missing),
            user_id: env.required("USER_ID", missing),
            comp_id: env.required("COMP_ID", missing),
            function: env.required("FUNCTION", missing),
        }
    }
}
