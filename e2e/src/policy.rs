//! Faults made with the API server's own admission: ValidatingAdmissionPolicies the tests
//! install to refuse one kind of write for a while, and the operators' Lease they aim at.

use crate::{Env, Scenario, eventually};
use k8s_openapi::api::admissionregistration::v1::{
    ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
};
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

/// An admission policy and its binding of one name, deleted when dropped, however the test ends.
pub struct PolicyInstalled(Arc<Env>, String);

impl Drop for PolicyInstalled {
    fn drop(&mut self) {
        for kind in ["validatingadmissionpolicybinding", "validatingadmissionpolicy"] {
            let _ = self.0.kubectl(&["delete", kind, &self.1, "--ignore-not-found", "--wait=false"]);
        }
    }
}

impl Scenario {
    /// The Lease the operators of this scenario's namespace share.
    pub fn lease(&self) -> String {
        format!("maintenance-operator-{}", self.ns)
    }

    /// Who holds the scenario's Lease, if anyone.
    pub async fn lease_holder(&self) -> Option<String> {
        let leases: Api<Lease> = Api::namespaced(self.client.clone(), "maintenance-operator");
        let lease = leases.get_opt(&self.lease()).await.ok()??;
        lease.spec?.holder_identity.filter(|h| !h.is_empty())
    }

    /// Install a ValidatingAdmissionPolicy `name` with `spec`, bound with Deny to the requests
    /// in `namespace` (None: every namespace); removed when the guard drops.
    pub async fn install_policy(
        &self,
        name: &str,
        spec: serde_json::Value,
        namespace: Option<&str>,
    ) -> PolicyInstalled {
        let policy: ValidatingAdmissionPolicy =
            serde_json::from_value(json!({"metadata": {"name": name}, "spec": spec})).unwrap();
        let mut binding =
            json!({"metadata": {"name": name}, "spec": {"policyName": name, "validationActions": ["Deny"]}});
        if let Some(ns) = namespace {
            binding["spec"]["matchResources"] =
                json!({"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}}});
        }
        let binding: ValidatingAdmissionPolicyBinding = serde_json::from_value(binding).unwrap();
        // The guard first: a policy created and then left by a failed binding is removed too.
        let installed = PolicyInstalled(self.env.clone(), name.to_string());
        Api::<ValidatingAdmissionPolicy>::all(self.client.clone())
            .create(&Default::default(), &policy)
            .await
            .expect("create the admission policy");
        Api::<ValidatingAdmissionPolicyBinding>::all(self.client.clone())
            .create(&Default::default(), &binding)
            .await
            .expect("create the admission policy's binding");
        installed
    }

    /// Refuse `holder`'s renewals of the scenario's Lease (an update that keeps it the holder),
    /// as an API server that accepts every other write from it would: its own renewals fail
    /// while its patches and Events still go through. Returns once the policy is in force.
    pub async fn refuse_renewals(&self, holder: &str) -> PolicyInstalled {
        let lease = self.lease();
        let spec = json!({
            "failurePolicy": "Fail",
            "matchConstraints": {"resourceRules": [{"apiGroups": ["coordination.k8s.io"], "apiVersions": ["v1"],
                "operations": ["UPDATE"], "resources": ["leases"], "resourceNames": [lease]}]},
            "validations": [{
                "expression": format!("!(has(oldObject.spec.holderIdentity) && oldObject.spec.holderIdentity == '{holder}' && has(object.spec.holderIdentity) && object.spec.holderIdentity == '{holder}')"),
                "message": "renewals refused by the e2e test"
            }]
        });
        let installed = self.install_policy(&format!("e2e-refuse-renewals-{}", self.ns), spec, None).await;
        // In force once a renewal of the test's own (a dry run) is refused.
        let leases: Api<Lease> = Api::namespaced(self.client.clone(), "maintenance-operator");
        eventually("the policy refuses renewals", Duration::from_secs(30), || async {
            let patch = json!({"spec": {"leaseTransitions": 0}});
            let dry = PatchParams { dry_run: true, ..Default::default() };
            leases.patch(&lease, &dry, &Patch::Merge(patch)).await.is_err()
        })
        .await;
        installed
    }

    /// Refuse every write of the scenario's DaemonSets that would run `image`, as an image
    /// admission policy (signatures, a registry allow-list) refuses an image it does not trust.
    pub async fn refuse_image(&self, image: &str) -> PolicyInstalled {
        let spec = json!({
            "failurePolicy": "Fail",
            "matchConstraints": {"resourceRules": [{"apiGroups": ["apps"], "apiVersions": ["v1"],
                "operations": ["UPDATE"], "resources": ["daemonsets"]}]},
            "validations": [{
                "expression": format!("!object.spec.template.spec.containers.exists(c, c.image == '{image}')"),
                "message": "the image is refused by the e2e test"
            }]
        });
        self.install_policy(&format!("e2e-refuse-image-{}", self.ns), spec, Some(&self.ns)).await
    }

    /// Refuse every status write of the scenario's upgrades that stores one of `phases`: the
    /// final status write of an upgrade that ends so.
    pub async fn refuse_status_phases(&self, phases: &[&str]) -> PolicyInstalled {
        let listed = phases.iter().map(|p| format!("'{p}'")).collect::<Vec<_>>().join(", ");
        let spec = json!({
            "failurePolicy": "Fail",
            "matchConstraints": {"resourceRules": [{"apiGroups": ["maintenance.dev"], "apiVersions": ["*"],
                "operations": ["UPDATE"], "resources": ["maintenanceupgrades/status"]}]},
            "validations": [{
                "expression": format!("!(has(object.status) && has(object.status.phase) && object.status.phase in [{listed}])"),
                "message": "the final status write is refused by the e2e test"
            }]
        });
        self.install_policy(&format!("e2e-refuse-final-{}", self.ns), spec, Some(&self.ns)).await
    }
}
