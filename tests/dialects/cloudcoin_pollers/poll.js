const apiHost = 'http://localhost:8006';
// This function would be called repeatedly until the task is no longer "running"
async function pollTask(taskId) {
try {
const response = await fetch(`${apiHost}/api/v1/tasks/${taskId}`);
if (!response.ok) {
throw new Error(`HTTP error! status: ${response.status}`);
}
const taskData = await response.json();
const task = taskData.payload;
console.log(`Task ${taskId} progress: ${task.progress}% - ${task.message}`);
if (task.status === 'completed') {
console.log('Task finished successfully!', task.data);
// Stop polling and handle the final data
return true;
} else if (task.status === 'error') {
console.error('Task failed:', task.message);
// Stop polling and handle the error
return true;
}
// Task is still running, continue polling
return false;
} catch (error) {
console.error('Error polling task status:', error);
return true; // Stop polling on error
}
}
// Example of how to use the poller
const taskId = 'bdc8e99d-dd8a-40e9-8840-f9f8eef16c71'; // ID from an async call
const pollInterval = setInterval(async () => {
const isDone = await pollTask(taskId);
if (isDone) {
clearInterval(pollInterval);
}
}, 2000); // Check every 2 seconds
