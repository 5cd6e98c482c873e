import { ApiReference } from '@/components/api-reference';
import { requireUser } from '@/lib/features/auth/session';

/** The API's reference, rendered from GET /api/v1/openapi.json by Swagger UI (served by this console). */
export default async function ApiDocs() {
  await requireUser();
  return (
    <>
      <h1>API reference</h1>
      <p className="help">
        Generated from the routes&rsquo; own schemas: <a href="/api/v1/openapi.json">/api/v1/openapi.json</a> (OpenAPI 3.1) is what a client
        generator reads. Calls take <code>Authorization: Bearer &lt;token&gt;</code>; make a token on{' '}
        <a href="/account/tokens">API tokens</a>.
      </p>
      <ApiReference specUrl="/api/v1/openapi.json" />
    </>
  );
}
