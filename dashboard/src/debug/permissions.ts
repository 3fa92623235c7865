/**
 * What the signed-in credential may do in the Debug view, read from the
 * permissions of its `auth_success` (the same list the gateway checks).
 *
 * The gateway's admin API needs `admin` on `system` (`admin:system`, or
 * `admin:*` which covers every resource); `admin:agent:x` is admin of one
 * agent only and does not open it. Publishing needs a `publish` permission on
 * something (admin implies publish on the same resource); the gateway then
 * checks each event's resources and answers 403 where it is not allowed.
 */

function parts(permission: string): [action: string, resource: string] {
  const i = permission.indexOf(':');
  return i < 0 ? [permission, ''] : [permission.slice(0, i), permission.slice(i + 1)];
}

/** May this credential use the deployment's admin API (and so see the Debug view)? */
export function isAdmin(permissions: readonly string[] | null | undefined): boolean {
  return (permissions ?? []).some((p) => {
    const [action, resource] = parts(p);
    return action === 'admin' && (resource === 'system' || resource === '*');
  });
}

/** May it publish at all (the publish form is shown), before the per-event check of the gateway? */
export function canPublish(permissions: readonly string[] | null | undefined): boolean {
  return (permissions ?? []).some((p) => {
    const [action, resource] = parts(p);
    return (action === 'publish' || action === 'admin') && resource !== '';
  });
}
