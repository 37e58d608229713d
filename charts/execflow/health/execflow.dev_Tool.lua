-- Argo CD health check for execflow.dev Tool
-- (argocd-cm key: resource.customizations.health.execflow.dev_Tool).
-- A Tool has no phase; its conditions say whether Tasks can use it: Ready=True -> Healthy,
-- Stalled=True (invalid inputSchema, defaults or spec) -> Degraded, otherwise Progressing (not
-- checked yet). A status that has not caught up with the spec yet
-- (status.observedGeneration < metadata.generation) is Progressing.
local hs = {}
local status = obj.status
local generation = obj.metadata and obj.metadata.generation
if status ~= nil and generation ~= nil and status.observedGeneration ~= nil
    and status.observedGeneration < generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
  return hs
end
local found = {}
if status ~= nil and status.conditions ~= nil then
  for _, condition in ipairs(status.conditions) do
    if condition.type ~= nil then
      found[condition.type] = condition
    end
  end
end
local function describe(condition)
  local text = condition.reason or ""
  if condition.message ~= nil and condition.message ~= "" then
    text = text .. ": " .. condition.message
  end
  return text
end
if found.Stalled ~= nil and found.Stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = describe(found.Stalled)
elseif found.Ready ~= nil and found.Ready.status == "True" then
  hs.status = "Healthy"
  hs.message = describe(found.Ready)
else
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to check the tool"
end
return hs
