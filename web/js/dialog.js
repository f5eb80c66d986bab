/*
 * dialog.js - the page's modal <dialog>s as promises, and the confirmation dialog.
 */
import { byId } from './dom.js';

/* Opens dlg modally; resolves with the value of the button that closed it ('' for Escape). */
export function openDialog(dlg) {
  return new Promise((resolve) => {
    const onClose = () => {
      dlg.removeEventListener('close', onClose);
      resolve(dlg.returnValue);
    };
    dlg.returnValue = '';
    dlg.addEventListener('close', onClose);
    dlg.showModal();
  });
}

/* true when the user confirmed. */
export async function confirmAction(title, text, okLabel) {
  byId('confirm-title').textContent = title;
  byId('confirm-text').textContent = text;
  byId('confirm-ok').textContent = okLabel;
  return (await openDialog(byId('confirm-dialog'))) === 'ok';
}
