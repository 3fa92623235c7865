/**
 * Resource keys in event data and filters (`agentId`, ...) and the kind the
 * admin API and permissions name them by (`agent:coder-001`), as the
 * gateway's `core/resources.py` maps them.
 */
export const KIND_OF_KEY: Readonly<Record<string, string>> = { agentId: 'agent', taskId: 'task', workflowId: 'workflow', repository: 'repo' };
