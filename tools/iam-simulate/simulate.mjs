// Evaluates IAM requests against identity policies with a real IAM policy
// evaluator (@cloud-copilot/iam-simulate), for scripts/iam_grants.py simulate.
// stdin: {"principal", "cases": [{"name", "policies": [{"name", "policy"}],
// "action", "resource", "account", "context"}]}; stdout: one result per case:
// {"name", "result" (Allowed, ImplicitlyDenied, ExplicitlyDenied, or Error),
// "errors", "allowedBy" (the Sids of the decisive Allow statements)}.
import { runSimulation } from '@cloud-copilot/iam-simulate'

const chunks = []
for await (const chunk of process.stdin) chunks.push(chunk)
const input = JSON.parse(Buffer.concat(chunks).toString('utf8'))

const results = []
for (const c of input.cases) {
  const simulation = {
    request: {
      principal: input.principal,
      action: c.action,
      resource: { resource: c.resource, accountId: c.account },
      contextVariables: c.context || {},
    },
    identityPolicies: c.policies,
    serviceControlPolicies: [],
    resourceControlPolicies: [],
  }
  const response = await runSimulation(simulation, {})
  if (response.resultType === 'error') {
    results.push({ name: c.name, result: 'Error', errors: response.errors })
    continue
  }
  const result = response.resultType === 'single' ? response.result : response.results[0]
  const allowedBy = (result?.analysis?.identityAnalysis?.allowStatements || []).map(
    (s) => s.statement?.sid?.() ?? s.statement?.sid ?? s.explain?.statementId ?? '?',
  )
  results.push({ name: c.name, result: response.overallResult, allowedBy })
}
process.stdout.write(JSON.stringify(results, null, 2) + '\n')
