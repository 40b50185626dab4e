# This script polls a task ID until it completes or fails.
# Replace the TASK_ID with the one you received from an async call.
TASK_ID="bdc8e99d-dd8a-40e9-8840-f9f8eef16c71"
echo "Polling task with ID: $TASK_ID"
while true; do
RESPONSE=$(curl -s "http://localhost:8006/api/v1/tasks/$TASK_ID")
STATUS=$(echo $RESPONSE | jq -r '.payload.status')
PROGRESS=$(echo $RESPONSE | jq -r '.payload.progress')
echo "Polling... Status: $STATUS, Progress: $PROGRESS%"
if [[ "$STATUS" == "completed" ]] || [[ "$STATUS" == "error" ]]; then
echo "Final Response:"
echo $RESPONSE | jq
break
fi
sleep 2
done
