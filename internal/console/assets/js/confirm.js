// confirmAction asks in the page's <dialog> and resolves to true on Confirm.

export function confirmAction(text, okLabel = 'Confirm') {
  const dlg = document.getElementById('confirm-dialog');
  // One question at a time: a second request while one is open is a no.
  if (dlg.open) return Promise.resolve(false);
  document.getElementById('confirm-text').textContent = text;
  document.getElementById('confirm-yes').textContent = okLabel;
  dlg.returnValue = '';
  return new Promise((resolve) => {
    dlg.addEventListener('close', () => resolve(dlg.returnValue === 'ok'), { once: true });
    dlg.showModal();
    document.getElementById('confirm-no').focus();
  });
}
