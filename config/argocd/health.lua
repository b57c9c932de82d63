-- Argo CD health check for maintenance.dev/MaintenanceUpgrade: Progressing while it works,
-- Suspended while it waits for the window or a human, Healthy once every stage passed its soak,
-- Degraded when it rolled back, failed, or is blocked by something only a human can fix.
-- Install: argocd-cm, key resource.customizations.health.maintenance.dev_MaintenanceUpgrade.
hs = {}
if obj.status == nil or obj.status.phase == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for maintenance-operator to look at the upgrade"
  return hs
end
local st = obj.status
hs.message = st.message or ""
if obj.metadata.generation ~= nil and st.observedGeneration ~= nil
    and st.observedGeneration < obj.metadata.generation then
  hs.status = "Progressing"
  hs.message = "Waiting for maintenance-operator to see the latest spec"
  return hs
end
-- Blocked until a human fixes the spec or the targets (not merely waiting for another upgrade).
local waits = { TargetOwnedByAnotherUpgrade = true }
if st.conditions ~= nil then
  for _, c in ipairs(st.conditions) do
    if c.type == "Blocked" and c.status == "True" and not waits[c.reason] then
      hs.status = "Degraded"
      hs.message = c.message
      return hs
    end
  end
end
local phases = {
  Succeeded = "Healthy",
  RolledBack = "Degraded",
  Failed = "Degraded",
  Degraded = "Degraded",
  Paused = "Suspended",
  AwaitingApproval = "Suspended",
  WaitingForWindow = "Suspended",
}
hs.status = phases[st.phase] or "Progressing"
return hs
