// The entry point of the share page (share.html, served at /s/{id}): one
// link's track or song, nothing of the catalog.
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { SharePage } from './SharePage';
import './styles.css';
import './Share.css';

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <SharePage />
  </StrictMode>,
);
