/** How an error reads in a dead letter and its log line. */
/** The error's text for a dead letter: a zod error's first issue, not its whole JSON. */
export function describeError(error: unknown): string {
  if (typeof error === 'object' && error !== null && 'issues' in error && Array.isArray((error as { issues: unknown }).issues)) {
    const issue = (error as { issues: Array<{ path?: unknown[]; message?: string }> }).issues[0];
    if (issue) return `${(issue.path ?? []).join('.') || 'value'}: ${issue.message ?? 'invalid'}`;
  }
  return error instanceof Error ? error.message : String(error);
}
