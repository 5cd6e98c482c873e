'use client';
// Swagger UI over the document, from this console's own copy (app/api-docs/assets): no CDN, no web
// fonts, and no calls to swagger.io (its validator badge is off).
import Script from 'next/script';
import { useEffect, useState } from 'react';

type SwaggerUi = (opts: Record<string, unknown>) => unknown;

export function ApiReference({ specUrl }: { specUrl: string }) {
  const [ready, setReady] = useState(false);
  useEffect(() => {
    const ui = (window as unknown as { SwaggerUIBundle?: SwaggerUi }).SwaggerUIBundle;
    if (!ready || !ui) return;
    ui({
      url: specUrl,
      dom_id: '#api-reference',
      validatorUrl: null,
      deepLinking: true,
      docExpansion: 'list',
      defaultModelsExpandDepth: 0,
      displayOperationId: true,
    });
  }, [ready, specUrl]);
  return (
    <>
      <link rel="stylesheet" href="/api-docs/assets/swagger-ui.css" />
      <Script src="/api-docs/assets/swagger-ui-bundle.js" strategy="afterInteractive" onReady={() => setReady(true)} />
      <div id="api-reference" data-testid="api-reference" />
    </>
  );
}
